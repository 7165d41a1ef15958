/* A program that links libmailproto the way a user would, from an
 * installed prefix: it checks the version and uses a few public calls. */
#include <stdio.h>
#include <string.h>

#include <mailproto/memstore.h>

int main(void) {
  const char *version = NULL;
  if (mailproto_version(&version) != MAILPROTO_VERSION_NUM ||
      strcmp(version, MAILPROTO_VERSION_STRING) != 0) {
    fprintf(stderr, "header/library version mismatch\n");
    return 1;
  }
  char b64[16];
  long n = mailproto_base64_encode("mail", 4, b64, sizeof b64);
  if (n != 8 || memcmp(b64, "bWFpbA==", 8) != 0) {
    fprintf(stderr, "base64 failed\n");
    return 1;
  }
  mailproto_memstore *store = NULL;
  if (mailproto_memstore_new(NULL, &store) != 0 ||
      mailproto_memstore_add_user(store, "alice", "secret") != 0) {
    fprintf(stderr, "memstore failed\n");
    return 1;
  }
  mailproto_memstore_free(store);
  printf("consumer ok: libmailproto %s (%s)\n", version,
         mailproto_strerror(MAILPROTO_ERR_NOMEM));
  return 0;
}
