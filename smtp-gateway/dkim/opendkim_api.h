// libopendkim's C API for C++: its header uses C's _Bool, which C++ spells bool.
#pragma once

#define _Bool bool
#include <opendkim/dkim.h>
#undef _Bool
