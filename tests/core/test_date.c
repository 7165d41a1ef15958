/* PLACEHOLDER */
#include "suites.h"
Suite *suite_core_date(void) { return suite_create("core_date"); }
