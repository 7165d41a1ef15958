/* PLACEHOLDER */
#include "suites.h"
Suite *suite_store_memstore(void) { return suite_create("store_memstore"); }
