/* PLACEHOLDER */
#include "suites.h"
Suite *suite_core_outq(void) { return suite_create("core_outq"); }
