/* PLACEHOLDER */
#include "suites.h"
Suite *suite_core_sasl(void) { return suite_create("core_sasl"); }
