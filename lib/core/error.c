#include "mailproto/mailproto.h"

const char *mailproto_strerror(int code) {
  switch (code) {
  case MAILPROTO_OK:
    return "success";
  case MAILPROTO_DEFERRED:
    return "operation deferred";
#define MAILPROTO_ERROR_TEXT_(name, value, text)                               \
  case value:                                                                  \
    return text;
    MAILPROTO_ERROR_LIST(MAILPROTO_ERROR_TEXT_)
#undef MAILPROTO_ERROR_TEXT_
  default:
    return "unknown error";
  }
}

int mailproto_is_fatal(int code) { return code <= MAILPROTO_ERR_FATAL; }
