/* PLACEHOLDER */
#include "suites.h"
Suite *suite_core_line(void) { return suite_create("core_line"); }
