#include "update/rfc2136.h"
