#include "zone/transfer.h"
