/*
 * The SASL server engine shared by SMTP AUTH, POP3 AUTH and IMAP
 * AUTHENTICATE. The engine speaks base64 text on both sides and never calls
 * the store: when it has credentials it says so, the session asks the store
 * (which may defer), and the session reports the verdict back. So the same
 * engine works with synchronous and deferred stores.
 *
 * Protocol framing differs (334 / "+ "), so challenges are returned as
 * base64 text in `out` for the session to frame.
 */
#ifndef MAILPROTO_CORE_SASL_H
#define MAILPROTO_CORE_SASL_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/mailproto.h"

/* Longest authzid, authcid or password accepted, in bytes. */
#define MAILPROTO_SASL_FIELD_MAX 255
/* Longest challenge text the session may set (CRAM-MD5). */
#define MAILPROTO_SASL_CHALLENGE_MAX 255

typedef struct mailproto_sasl mailproto_sasl;

/* What the session must do next (negative returns are failures: SYNTAX
 * for malformed responses or base64, CANCELLED for "*", AUTH_FAILED,
 * TOO_LONG, UNSUPPORTED for an unknown mechanism,
 * ENCRYPTION_REQUIRED, NOMEM). */
enum {
  /* Send `out` (base64, possibly empty) as a continuation; feed the
   * client's next line to mailproto_sasl_step(). */
  MAILPROTO_SASL_CHALLENGE = 1,
  /* Check authzid/authcid/password with the store's authenticate. */
  MAILPROTO_SASL_CHECK_PASSWORD = 2,
  /* Look up authcid's secret, then call mailproto_sasl_verify_secret(). */
  MAILPROTO_SASL_NEED_SECRET = 3,
  /* Authenticated. */
  MAILPROTO_SASL_SUCCESS = 4
};

/* A mechanism. New ones (SCRAM) add a table entry in sasl.c. */
typedef struct mailproto_sasl_mech {
  const char *name;
  unsigned bit;      /* MAILPROTO_SASL_* */
  int plaintext;     /* sends the password in the clear */
  int server_first;  /* an initial response is a protocol error */
  int (*start)(mailproto_sasl *s, const uint8_t *ir, size_t ir_len,
               int has_ir);
  int (*step)(mailproto_sasl *s, const uint8_t *in, size_t len);
  int (*verify_secret)(mailproto_sasl *s, const uint8_t *secret, size_t len);
} mailproto_sasl_mech;

struct mailproto_sasl {
  const mailproto_allocator *alloc;
  const mailproto_sasl_mech *mech; /* NULL until started */
  int step;                        /* mechanism's own progress */
  char authzid[MAILPROTO_SASL_FIELD_MAX + 1];
  char authcid[MAILPROTO_SASL_FIELD_MAX + 1];
  char password[MAILPROTO_SASL_FIELD_MAX + 1];
  size_t password_len;
  char challenge[MAILPROTO_SASL_CHALLENGE_MAX + 1]; /* raw, for CRAM-MD5 */
  char out[4 * ((MAILPROTO_SASL_CHALLENGE_MAX + 2) / 3) + 1]; /* base64 */
  size_t out_len;
  uint8_t digest_hex[32]; /* CRAM-MD5 response digest */
};

/* Allocates an engine for one exchange. Returns 0 or NOMEM. */
int mailproto_sasl_new(const mailproto_allocator *alloc, mailproto_sasl **out);
/* Wipes the credentials and frees the engine. NULL is accepted. */
void mailproto_sasl_free(mailproto_sasl *s);

/* Finds a mechanism by name (case-insensitive); NULL if unknown. */
const mailproto_sasl_mech *mailproto_sasl_find(const char *name, size_t len);

/*
 * Whether `mech` may be used: enabled in `mask`, and not plaintext on an
 * insecure transport unless allowed. Returns 0, UNSUPPORTED, or
 * ENCRYPTION_REQUIRED.
 */
int mailproto_sasl_allowed(const mailproto_sasl_mech *mech, unsigned mask,
                           int secure, int allow_plaintext);

/* Writes the space-separated names of the usable mechanisms ("PLAIN LOGIN")
 * with a NUL; returns the length, or BUFFER_FULL. */
int mailproto_sasl_list(unsigned mask, int secure, int allow_plaintext,
                        char *out, size_t out_size);

/*
 * Starts an exchange. `challenge` is the text a server-first mechanism
 * sends (CRAM-MD5: "<unique.stamp@host>"; may be NULL otherwise).
 * `ir`/`ir_len` is the client's initial response as base64 text ("=" for
 * an empty one); pass NULL for none. Returns a MAILPROTO_SASL_* step or a
 * negative code.
 */
int mailproto_sasl_start(mailproto_sasl *s, const mailproto_sasl_mech *mech,
                         const char *challenge, const char *ir,
                         size_t ir_len);

/* Feeds one client response line (base64 text, or "*" to cancel). */
int mailproto_sasl_step(mailproto_sasl *s, const char *line, size_t len);

/* After NEED_SECRET: checks the response against the secret. Returns
 * MAILPROTO_SASL_SUCCESS or AUTH_FAILED. */
int mailproto_sasl_verify_secret(mailproto_sasl *s, const void *secret,
                                 size_t len);

#endif
