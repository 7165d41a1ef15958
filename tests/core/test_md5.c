/* PLACEHOLDER */
#include "suites.h"
Suite *suite_core_md5(void) { return suite_create("core_md5"); }
