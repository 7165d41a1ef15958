/*
 * The messages of tests/mime/corpus/ (each NAME.eml has its expected
 * FETCH output in NAME.expected) and a loader, shared by the mime suites.
 */
#ifndef MAILPROTO_TEST_MIME_CORPUS_H
#define MAILPROTO_TEST_MIME_CORPUS_H

#include <stdio.h>
#include <stdlib.h>

#include "suites.h"

static const char *const mime_corpus[] = {
    "plain",
    "plain_lf",
    "no_mime",
    "alternative_inline_images",
    "forwarded",
    "smime_signed",
    "smime_encrypted",
    "pgp_signed",
    "pgp_encrypted",
    "calendar_invite",
    "nonascii_headers",
    "digest",
    "groups_and_routes",
    "missing_final_boundary",
    "wrong_boundary",
    "no_boundary_param",
    "nested_missing_close",
    "boundary_lookalikes",
    "header_oddities",
    "nul_and_8bit_headers",
    "encoded_message_rfc822",
    "message_global",
    "headers_only",
    "empty_body",
    "bad_content_types",
};

enum { MIME_CORPUS_COUNT = sizeof mime_corpus / sizeof mime_corpus[0] };

/* Reads tests/mime/corpus/<name><ext> into a malloc'ed buffer (NULL if it
 * cannot be read); *len gets its size. */
static inline unsigned char *mime_corpus_read(const char *name, const char *ext,
                                              size_t *len) {
  char path[512];
  snprintf(path, sizeof path, "%s/mime/corpus/%s%s", MAILPROTO_TEST_DATA_DIR,
           name, ext);
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  unsigned char *data = NULL;
  size_t cap = 0, n = 0, got;
  do {
    if (n == cap) {
      cap = cap ? cap * 2 : 4096;
      unsigned char *grown = realloc(data, cap);
      if (!grown) {
        free(data);
        fclose(f);
        return NULL;
      }
      data = grown;
    }
    got = fread(data + n, 1, cap - n, f);
    n += got;
  } while (got > 0);
  fclose(f);
  *len = n;
  return data;
}

#endif
