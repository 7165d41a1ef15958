/* PLACEHOLDER */
#include "suites.h"
Suite *suite_core_buffer(void) { return suite_create("core_buffer"); }
