/* Policy replies (see reply.h). */
#include "core/reply.h"

#include <string.h>

#include "core/alloc.h"

void mailproto_reply_clear(mailproto_reply *r, const mailproto_allocator *a) {
  mailproto_mem_free(a, r->text);
  memset(r, 0, sizeof *r);
}

/* Length of `text` cut at `max` bytes; a cut never splits a UTF-8
 * sequence, so what is kept stays valid where the whole was. */
static size_t cut(const char *text, size_t max) {
  size_t len = 0;
  while (len < max && text[len])
    len++;
  if (text[len] != '\0')
    while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80)
      len--;
  return len;
}

int mailproto_reply_set(mailproto_reply *r, const mailproto_allocator *a,
                        const mailproto_reply_rules *rules, int code,
                        const char *enhanced, const char *text) {
  mailproto_reply_clear(r, a);
  r->code = code;
  if (enhanced && strlen(enhanced) < sizeof r->enhanced)
    memcpy(r->enhanced, enhanced, strlen(enhanced) + 1);
  size_t len = text ? cut(text, rules->max) : 0;
  if (len == 0)
    return 0;
  char *copy = mailproto_mem_malloc(a, len + 1);
  if (!copy) {
    r->nomem = 1;
    return MAILPROTO_ERR_NOMEM;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c < 0x20 || c == 0x7f)
      c = ' ';
    else if (c > 0x7f && rules->ascii)
      c = '?';
    copy[i] = (char)c;
  }
  copy[len] = '\0';
  r->text = copy;
  return 0;
}
