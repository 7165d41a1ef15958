/* PLACEHOLDER */
#include "suites.h"
Suite *suite_harness(void) { return suite_create("harness"); }
