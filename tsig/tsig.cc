#include "tsig/tsig.h"
