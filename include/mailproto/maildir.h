/*
 * The Maildir store: a complete backend of store.h on the Maildir format
 * that Dovecot, mutt, mbsync and procmail-style delivery agents read.
 *
 * Layout under the configured root:
 *   ROOT/<user>/                 INBOX (a Maildir: tmp/ new/ cur/)
 *   ROOT/<user>/.<Name>/         the folder "Name" (Maildir++)
 *   ROOT/<user>/.<A>.<B>/        the folder "A/B"
 * Each level of a name is stored in IMAP modified UTF-7 (as Dovecot does),
 * with '%', '.' and a leading '~' written "%25", "%2E" and "%7E" ("a.b" is
 * ".a%2Eb"); a name whose directory name would pass 255 bytes lives in
 * ".~<hash>" with its name in a file inside. Names with "." or ".." levels,
 * control characters or more than MAILPROTO_MAILBOX_NAME_MAX bytes are refused
 * (BAD_NAME); every name maps to exactly one directory inside the user's
 * Maildir.
 *
 * Per folder: mailproto-index (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, each
 * file's UID and mod-sequence; appended to, rewritten atomically when it
 * grows), dovecot-keywords (keyword letters a..z, Dovecot's format) and
 * mailproto-keywords (the keywords beyond those 26 letters, up to
 * MAILPROTO_KEYWORDS_MAX), and mailproto-cache/ (the store's cache_get /
 * cache_put entries, one file "<uidvalidity>.<uid>" per message: parsed
 * MIME structures that survive restarts; written without fsync, removed
 * with the message when this store expunges it). Per user: subscriptions
 * (Dovecot's format) and the UIDVALIDITY counter.
 *
 * Durability: a message is written to tmp/, fsynced, renamed into new/ (an
 * APPEND into cur/ with its flags), and the directory fsynced before a
 * commit is reported. Flags live in the ":2," suffix of file names; UIDs
 * stay stable when other programs rename files; files added by other
 * programs get new UIDs at the next sync, files they remove are expunged.
 * Files in tmp/ older than 36 hours are removed when a folder is opened.
 *
 * Several processes may share a root: the index is protected by an fcntl
 * lock with a bounded wait (TEMPORARY when it runs out), and the POP3
 * maildrop lock (MAILPROTO_OPEN_EXCLUSIVE) works across processes. The
 * `notify` function of `open` is called for changes made through the same
 * store object; changes by other processes (or other programs) are found
 * when the session next syncs, which costs a few stat calls when nothing
 * changed: a server that runs several processes polls (sync while idle).
 *
 * A damaged index (not one a crash can leave: that is a torn last line,
 * which is ignored) is set aside as mailproto-index.damaged and rebuilt
 * from the files under a new UIDVALIDITY, so clients discard what they
 * cached instead of seeing wrong UIDs.
 *
 * POSIX only (open, rename, link, fsync, fcntl locks, directory reading).
 * The store never defers: every hook finishes before it returns. Not
 * thread-safe: one store object per thread.
 */
#ifndef MAILPROTO_MAILDIR_H
#define MAILPROTO_MAILDIR_H

#include "mailproto/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mailproto_maildir mailproto_maildir;

typedef struct mailproto_maildir_config {
  size_t struct_size;
  const mailproto_allocator *allocator; /**< NULL: the C library's */
  const char *root;         /**< directory holding one Maildir per user;
                                 created if missing (mode 0700) */
  int fsync;                /**< fsync files and directories: 1. Turning it
                                 off loses the durability guarantee. */
  unsigned lock_timeout_ms; /**< longest wait for another process's index
                                 lock before TEMPORARY: 5000 */
  int create_users;         /**< the account hooks (authenticate,
                                 lookup_secret, lookup_recipient) create a
                                 missing Maildir for known users: 1. With 0
                                 a user without one has no mailboxes and
                                 lookup_recipient gives NOT_FOUND. */
} mailproto_maildir_config;

/** Fills `config` with the defaults above; pass sizeof *config. */
MAILPROTO_EXTERN void
mailproto_maildir_config_init(mailproto_maildir_config *config,
                              size_t struct_size);

/**
 * Opens a Maildir root. Returns 0 and sets *out, INVALID_ARGUMENT (no root),
 * IO (the root cannot be created or read), or NOMEM.
 */
MAILPROTO_EXTERN int
mailproto_maildir_new(const mailproto_maildir_config *config,
                      mailproto_maildir **out);

/** Frees the store. Every session, open mailbox, account and writer using it
 * must be gone first. */
MAILPROTO_EXTERN void mailproto_maildir_free(mailproto_maildir *store);

/**
 * Adds a user (name and password kept in memory; the password is also the
 * CRAM-MD5/APOP secret). The name becomes a directory name, so it is
 * refused (INVALID_ARGUMENT) if empty, longer than 64 bytes, or holding '/',
 * '@', a leading '.', or control characters; a password longer than
 * MAILPROTO_SECRET_MAX is refused too. Recipients (lookup_recipient) are
 * matched by the local part of the address against the user names without
 * regard to case (the domain is ignored), so a name differing from another
 * only in case gives EXISTS. Nothing is written to disk here (see
 * create_users). Returns 0, EXISTS, INVALID_ARGUMENT or NOMEM.
 */
MAILPROTO_EXTERN int mailproto_maildir_add_user(mailproto_maildir *store,
                                                const char *name,
                                                const char *password);

/** Fills *out with the store's hooks and context. */
MAILPROTO_EXTERN void mailproto_maildir_store(mailproto_maildir *store,
                                              mailproto_store *out);

#ifdef __cplusplus
}
#endif

#endif /* MAILPROTO_MAILDIR_H */
