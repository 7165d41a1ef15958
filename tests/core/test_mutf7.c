/* PLACEHOLDER */
#include "suites.h"
Suite *suite_core_mutf7(void) { return suite_create("core_mutf7"); }
