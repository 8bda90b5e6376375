#include "zone/journal.h"
