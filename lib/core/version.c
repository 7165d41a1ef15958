#include "mailproto/mailproto.h"

unsigned mailproto_version(const char **string) {
  if (string)
    *string = MAILPROTO_VERSION_STRING;
  return MAILPROTO_VERSION_NUM;
}
