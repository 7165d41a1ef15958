/* PLACEHOLDER */
#include "suites.h"
Suite *suite_store_fault(void) { return suite_create("store_fault"); }
