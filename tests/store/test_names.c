/* PLACEHOLDER */
#include "suites.h"
Suite *suite_store_names(void) { return suite_create("store_names"); }
