/* PLACEHOLDER */
#include "suites.h"
Suite *suite_core_base64(void) { return suite_create("core_base64"); }
