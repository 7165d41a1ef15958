/*
 * The Maildir store's data model, shared by the maildir_*.c files.
 *
 * On disk (per user, ROOT/<user>/ is INBOX and holds the folders):
 *   tmp/ new/ cur/          the Maildir proper; flags in ":2,<letters>"
 *   mailproto-index         UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, the \Recent
 *                           mark and one record per message (maildir_index.c)
 *   mailproto-index.lock    fcntl lock target guarding the index
 *   mailproto-pop3.lock     held while an EXCLUSIVE open lasts
 *   dovecot-keywords        keyword letters a..z (Dovecot's format)
 *   mailproto-keywords      keywords 26..63 (no letter; same format)
 *   maildirfolder           Maildir++ marker in every folder but INBOX
 *   mailproto-name          the real name of a folder whose directory name
 *                           would be too long (".~<hash>", maildir_path.c)
 *   mailproto-cache/        parsed MIME structures, one file per message
 *                           (maildir_cache.c)
 * and in the user directory only: subscriptions (Dovecot's format),
 * mailproto-uidvalidity (+ .lock), mailproto-user.lock.
 *
 * In memory: the store keeps one md_folder per folder directory that is in
 * use (open handles, writers, or a small cache of idle ones), so every
 * handle of this process shares one view of a folder and a change through
 * one notifies the others at once. Other processes' changes are read from
 * the index and the directories when a hook refreshes the folder.
 *
 * Locks (fcntl, bounded wait) are taken in this order only: user lock,
 * folder lock(s) (two at once in path order), UIDVALIDITY lock. The first
 * two are re-entrant within the process; fcntl locks belong to the process,
 * so every lock file is opened once per lock holder and never elsewhere.
 */
#ifndef MAILPROTO_MAILDIR_MAILDIR_INTERNAL_H
#define MAILPROTO_MAILDIR_MAILDIR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "core/alloc.h"
#include "mailproto/maildir.h"
#include "store/store_util.h"

#define MD_PATH_MAX 4096
/* Longest root path: leaves room for user, folder and file names. */
#define MD_ROOT_MAX 2048
#define MD_USER_MAX 64
/* NAME_MAX of the common file systems. */
#define MD_FILE_MAX 255
#define MD_UID_MAX 0xfffffffeu
/* Keywords 0..25 have a letter a..z in file names. */
#define MD_LETTERS 26
/* Most bytes one read returns: bounded memory per handle. */
#define MD_READ_MAX ((size_t)1 << 20)
/* Idle folder views kept for a fast reopen. */
#define MD_IDLE_MAX 8
/* Directory mtimes this close to now may hide a later change made within
 * the same timestamp tick, so the next refresh scans again. */
#define MD_DIRTY_SECS 2
/* tmp/ files older than this are debris of crashed writers (maildir(5)). */
#define MD_STALE_TMP_SECS (36 * 3600)

#define MD_INDEX "mailproto-index"
#define MD_INDEX_LOCK "mailproto-index.lock"
#define MD_POP3_LOCK "mailproto-pop3.lock"
#define MD_KEYWORDS "dovecot-keywords"
#define MD_KEYWORDS_HIGH "mailproto-keywords"
#define MD_NAME_FILE "mailproto-name"
#define MD_CACHE_DIR "mailproto-cache"
#define MD_FOLDER_MARK "maildirfolder"
#define MD_SUBSCRIPTIONS "subscriptions"
#define MD_UIDVALIDITY "mailproto-uidvalidity"
#define MD_UIDVALIDITY_LOCK "mailproto-uidvalidity.lock"
#define MD_USER_LOCK "mailproto-user.lock"
/* Directories in a user directory that are not folders. */
#define MD_TRASH_PREFIX "mailproto-trash."
#define MD_NEWDIR_PREFIX "mailproto-new."

/* ---- locks ---- */

typedef struct md_lock {
  int fd; /* -1 when not held */
  unsigned depth;
} md_lock;

/* ---- users ---- */

typedef struct md_user {
  char *name;
  char *password;
  size_t password_len;
  char *dir; /* ROOT/<name>: the Maildir of INBOX */
  md_lock lock;
} md_user;

/* ---- messages ---- */

enum {
  MD_IN_NEW = 0x1, /* the file is in new/, else in cur/ */
  MD_ODD = 0x2,    /* the pool holds the file's whole name, which is not
                      the one derived from base and flags */
  MD_GONE = 0x4,   /* removed; dropped by the next compaction of msgs */
  MD_FOUND = 0x8   /* scratch mark of a directory scan */
};

/* One message: 56 bytes plus its name in the folder's pool. */
typedef struct md_msg {
  uint32_t uid;
  uint32_t name; /* offset of its name in the pool */
  uint64_t kw;   /* keyword bits (0..25 also in the file name) */
  uint64_t modseq;
  uint64_t vsize; /* RFC822.SIZE */
  uint64_t psize; /* bytes in the file */
  int64_t date;   /* INTERNALDATE (the file's mtime) */
  int16_t tz;
  uint8_t flags;    /* MAILPROTO_FLAGS_SETTABLE */
  uint8_t state;    /* MD_* */
  uint8_t base_len; /* the base name: up to ':' */
  uint8_t name_len; /* the pooled name (base_len unless MD_ODD) */
} md_msg;

typedef struct md_handle md_handle;

/* What message_get still says of a message that left msgs (see
 * md_folder.graves and md_handle.tombs). */
typedef struct md_tomb {
  uint32_t uid;
  int16_t tz;
  uint64_t vsize, psize;
  int64_t date;
} md_tomb;

/* A folder's state as this process last saw it. */
typedef struct md_folder {
  mailproto_maildir *store;
  md_user *user;
  char *name; /* canonical mailbox name */
  char *dir;  /* absolute path of its Maildir */
  size_t refs;
  int gone; /* deleted or renamed: handles see everything expunged */

  /* The index header and its running values. */
  int loaded;
  uint32_t uidvalidity, uidnext, recent_from;
  uint64_t modseq;
  unsigned special_use;

  md_msg *msgs; /* ascending UIDs; MD_GONE entries only inside a call */
  size_t count, cap;
  char *pool;
  size_t pool_len, pool_cap, pool_garbage;
  size_t seen, deleted, in_new;
  uint64_t vsize;
  uint64_t gen; /* grows whenever messages leave msgs */
  /* Messages that left msgs while handles were open, ascending by UID,
   * until every handle has synced past them: a sync hands those it
   * reports expunged to its handle's tombs. Best effort (NOMEM: none). */
  md_tomb *graves;
  size_t grave_count;

  char *kw[64]; /* keyword table; NULL: unused index */
  unsigned kw_count;
  struct timespec kw_mtime[2]; /* of the two keyword files when read */
  off_t kw_size[2];

  /* What was read from disk, to tell what changed since. */
  dev_t ix_dev;
  ino_t ix_ino;
  uint64_t ix_len;   /* bytes of the index parsed (whole lines) */
  size_t ix_records; /* records after the header, for compaction */
  int ix_base;       /* still reading the messages a rewrite kept */
  struct timespec new_mtime, cur_mtime;
  int new_dirty, cur_dirty; /* scan again whatever the mtime says */
  time_t tmp_cleaned;

  md_lock lock;
  md_handle *handles;
  md_handle *exclusive;
  struct md_folder *prev, *next; /* the store's registry, recent first */
} md_folder;

struct md_handle {
  md_folder *f;
  unsigned flags; /* MAILPROTO_OPEN_* */
  mailproto_store_notify_fn notify;
  void *notify_arg;
  int detached; /* its folder went away; everything was reported gone */
  uint32_t uidvalidity;
  /* What this handle has been told. */
  uint32_t *known; /* UIDs, ascending */
  size_t known_count, known_cap;
  uint32_t known_uidnext;
  uint64_t known_modseq, known_gen, known_kw; /* known_kw: table bits */
  /* UID ranges that are \Recent in this handle, ascending. */
  mailproto_uid_range *recent;
  size_t recent_count, recent_cap;
  int excl_fd; /* the POP3 lock, or -1 */
  /* The last read: its file stays open, its bytes in buf. */
  uint32_t read_uid;
  int read_fd;
  uint8_t *buf;
  size_t buf_cap;
  char *cache; /* the last cache_get's entry */
  /* The messages its last sync reported expunged, ascending: message_get
   * still answers for them until the next sync. */
  md_tomb *tombs;
  size_t tomb_count;
  md_handle *prev, *next;
};

typedef int (*mailproto_maildir_fault_fn)(void *arg, const char *call);

struct mailproto_maildir {
  mailproto_allocator alloc;
  char *root;
  int fsync;
  unsigned lock_timeout_ms;
  int create_users;
  md_user **users;
  size_t user_count, user_cap;
  md_folder *folders; /* registry, most recently used first */
  size_t idle;        /* folders with refs == 0 */
  uint32_t seq;       /* Q<seq> of unique file names */
  char host[72];      /* sanitised host name for file names */
  mailproto_maildir_fault_fn fault;
  void *fault_arg;
};

/* ---- maildir.c: store, users, registry ---- */

/* The folder view for `dir` (an absolute path), created if needed; one
 * reference more. NOMEM. */
int mailproto_maildir_folder_get(mailproto_maildir *s, md_user *u,
                                 const char *canon, const char *dir,
                                 md_folder **out);
/* The live folder view for `dir`, or NULL (no reference taken). */
md_folder *mailproto_maildir_folder_find(mailproto_maildir *s, const char *dir);
void mailproto_maildir_folder_put(mailproto_maildir *s, md_folder *f);
/* The folder left its directory (deleted, renamed, vanished): handles see
 * everything expunged, the registry forgets it. */
void mailproto_maildir_folder_detach(mailproto_maildir *s, md_folder *f);
/* Calls the notify function of every handle but `except`. */
void mailproto_maildir_notify(md_folder *f, const md_handle *except);
/* Test hook: every mutating system call (and fsync) asks `fn` first, with
 * the call's name; a positive return makes it fail with that errno value,
 * a negative one with EIO (or fn may _exit to simulate a crash there). */
void mailproto_maildir_set_fault(mailproto_maildir *s,
                                 mailproto_maildir_fault_fn fn, void *arg);

/* ---- maildir_io.c: system calls, paths, files ---- */

/* Maps errno to a MAILPROTO_ERR_* code. */
int mailproto_maildir_errno(int err);
/* Formats a path; -1 (ENAMETOOLONG) if it does not fit MD_PATH_MAX. */
int mailproto_maildir_path(char *out, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int mailproto_maildir_open(mailproto_maildir *s, const char *path, int flags,
                           unsigned mode);
int mailproto_maildir_write_all(mailproto_maildir *s, int fd, const void *p,
                                size_t len);
int mailproto_maildir_pwrite_all(mailproto_maildir *s, int fd, const void *p,
                                 size_t len, uint64_t off);
/* fsync a file, or the directory at `path`, when the store does fsync. */
int mailproto_maildir_sync_fd(mailproto_maildir *s, int fd);
int mailproto_maildir_sync_dir(mailproto_maildir *s, const char *path);
int mailproto_maildir_rename(mailproto_maildir *s, const char *from,
                             const char *to);
int mailproto_maildir_link(mailproto_maildir *s, const char *from,
                           const char *to);
int mailproto_maildir_unlink(mailproto_maildir *s, const char *path);
int mailproto_maildir_mkdir(mailproto_maildir *s, const char *path);
int mailproto_maildir_rmdir(mailproto_maildir *s, const char *path);
int mailproto_maildir_truncate(mailproto_maildir *s, int fd, uint64_t len);
int mailproto_maildir_set_mtime(mailproto_maildir *s, int fd, int64_t when);
/* Reads a whole file of at most `max` bytes into fresh memory (a NUL is
 * added). NOT_FOUND, TOO_LONG, IO, NOMEM. */
int mailproto_maildir_read_file(mailproto_maildir *s, const char *path,
                                size_t max, char **out, size_t *len);
/* Replaces dir/name atomically: a temporary file, fsync, rename, fsync of
 * the directory. */
int mailproto_maildir_replace_file(mailproto_maildir *s, const char *dir,
                                   const char *name, const void *data,
                                   size_t len);
/* A unique base name "<sec>.M<usec>P<pid>Q<seq>.<host>". */
void mailproto_maildir_unique(mailproto_maildir *s, char *out, size_t size);
/* Removes a directory and everything in it, two levels deep at most (a
 * folder and its tmp/ new/ cur/). */
int mailproto_maildir_remove_tree(mailproto_maildir *s, const char *path);
/* 1 if path is a directory, 0 if it does not exist or is not one, or a
 * negative code. */
int mailproto_maildir_is_dir(const char *path);
/* Creates dir (mode 0700) with tmp/ new/ cur/; existing parts are fine. */
int mailproto_maildir_make_maildir(mailproto_maildir *s, const char *dir);
int64_t mailproto_maildir_now(void);

/* ---- maildir_lock.c ---- */

/* The folder lock (re-entrant); the last unlock first tidies the index. */
int mailproto_maildir_folder_lock(mailproto_maildir *s, md_folder *f);
void mailproto_maildir_folder_unlock(mailproto_maildir *s, md_folder *f);

void mailproto_maildir_lock_init(md_lock *l);
/* Takes the lock on dir/file, waiting up to lock_timeout_ms for another
 * process (TEMPORARY then); re-entrant. */
int mailproto_maildir_lock(mailproto_maildir *s, md_lock *l, const char *dir,
                           const char *file);
void mailproto_maildir_unlock(md_lock *l);
/* The POP3 maildrop lock of a folder, without waiting: IN_USE if another
 * process holds it. Sets *fd to keep until close. */
int mailproto_maildir_lock_exclusive(mailproto_maildir *s, const char *dir,
                                     int *fd);
/* The next UIDVALIDITY of a user: above every value handed out before and
 * at least the current time. */
int mailproto_maildir_next_uidvalidity(mailproto_maildir *s, md_user *u,
                                       uint32_t *out);

/* ---- maildir_path.c: names <-> directories ---- */

/* 1 if a user name may become a directory name (see maildir.h). */
int mailproto_maildir_user_name_ok(const char *name);
/* The directory name (relative to the user directory) of canonical mailbox
 * `canon`: "" for INBOX, ".A.B" for "A/B", or, when that would pass
 * MD_FILE_MAX, ".~<16 hex digits>" to which `probe` 1..7 appends "-<n>".
 * BAD_NAME. */
int mailproto_maildir_dir_name(const char *canon, unsigned probe, char *out,
                               int *hashed);
/* The mailbox name a folder directory name stands for (written into `out`,
 * MAILPROTO_MAILBOX_NAME_MAX + 1 bytes): 0, 1 for a hashed name (the name
 * is in its mailproto-name file), or -1 if the directory is no folder. */
int mailproto_maildir_dir_decode(const char *dirname, char *out);
/* 1 if hashed directory `dirname` may hold mailbox `canon`. */
int mailproto_maildir_hashed_for(const char *dirname, const char *canon);
/* Finds the directory of mailbox `canon` of user u: fills `dir` (absolute)
 * and sets *kind to 0 (missing), 1 (a placeholder without cur/), 2 (a
 * mailbox). For a missing hashed name, `dir` is the first free probe.
 * BAD_NAME, IO. */
int mailproto_maildir_locate(mailproto_maildir *s, const md_user *u,
                             const char *canon, char *dir, int *kind);

/* ---- maildir_flags.c: file names and keywords ---- */

typedef struct md_info {
  size_t base_len;
  uint8_t flags;    /* D F R S T as MAILPROTO_FLAG_* */
  uint32_t letters; /* a..z as bits 0..25 */
  int has_info;     /* ":2," present */
} md_info;
/* Parses the flags of a file name. 0, or -1 if the name is not one this
 * store can index (control characters, spaces, '/', too long, empty base). */
int mailproto_maildir_info_parse(const char *name, size_t len, md_info *out);
/* Writes the name of message m with `flags` and `kw` into out
 * (MD_FILE_MAX + 1): the base and ":2," plus letters in ASCII order,
 * keeping letters and ",..." extensions of its current name this store
 * does not manage. Sets *odd when that name is not the plain derived one.
 * in_new: a file in new/ keeps its name unless it had info. -1 if too
 * long. */
int mailproto_maildir_name_for(const md_folder *f, const md_msg *m, int in_new,
                               uint8_t flags, uint64_t kw, char *out, int *odd);
/* The name this store gives a file: the base alone in new/, else the base,
 * ":2," and the letters of flags and keywords 0..25 in ASCII order (out:
 * MD_FILE_MAX + 1 bytes; base_len <= MD_FILE_MAX - 34). */
void mailproto_maildir_plain_name(const char *base, size_t base_len, int in_new,
                                  uint8_t flags, uint64_t kw, char *out);
/* The current name of m. */
void mailproto_maildir_name_of(const md_folder *f, const md_msg *m, char *out);
/* Path of m's file. */
int mailproto_maildir_msg_path(const md_folder *f, const md_msg *m, char *out);
/* Keyword bits 0..25 a file's letters stand for (known keywords only). */
uint64_t mailproto_maildir_letters_kw(const md_folder *f, uint32_t letters);
/* Reloads the keyword table from the folder's keyword files (only adds:
 * indices never change meaning). NOMEM, IO. */
int mailproto_maildir_keywords_load(mailproto_maildir *s, md_folder *f);
/* The same, but only for files that changed since they were read. */
int mailproto_maildir_keywords_refresh(mailproto_maildir *s, md_folder *f);
/* Index of a keyword (case-insensitive) or -1. */
int mailproto_maildir_keyword_find(const md_folder *f, const char *kw);

/* Keywords a change adds to the table: planned (checked against the limit),
 * then written to disk and the table. */
typedef struct md_kw_plan {
  const char *names[64];
  unsigned index[64];
  unsigned count;
} md_kw_plan;
/* Validates `keywords` (BAD_NAME, INVALID_ARGUMENT) and maps them to
 * indices, planning new ones when add_new (LIMIT when the table is full);
 * with add_new 0 unknown names are skipped. Sets *mask. The plan starts
 * empty unless `keep` (several calls build one plan). */
int mailproto_maildir_kw_plan(const md_folder *f, md_kw_plan *plan,
                              const char *const *keywords, size_t count,
                              int add_new, int keep, uint64_t *mask);
/* Index `name` (valid) gets: existing, planned, or planned now. LIMIT. */
int mailproto_maildir_kw_plan_one(const md_folder *f, md_kw_plan *plan,
                                  const char *name, unsigned *index);
/* Writes f's keyword table into the keyword files of directory `dir`. */
int mailproto_maildir_keywords_save(mailproto_maildir *s, const md_folder *f,
                                    const char *dir);
/* Writes the planned keywords to the keyword files and the table (folder
 * lock held). NOMEM, IO. */
int mailproto_maildir_kw_commit(mailproto_maildir *s, md_folder *f,
                                md_kw_plan *plan);

/* ---- maildir_index.c: the index file ---- */

/* Reads what was appended to the index since the last read, or all of it
 * if it was replaced. NOT_FOUND if it does not exist, SYNTAX if it is
 * damaged, IO, NOMEM. */
int mailproto_maildir_index_read(mailproto_maildir *s, md_folder *f);
/* Writes a new index holding f's messages and header (with `uidvalidity`)
 * and replaces the old one (folder lock held). */
int mailproto_maildir_index_rewrite(mailproto_maildir *s, md_folder *f,
                                    uint32_t uidvalidity);
/* Appends records (whole lines) to the index (folder lock held); fsync if
 * `durable`. The caller applies the same change to f. */
int mailproto_maildir_index_append(mailproto_maildir *s, md_folder *f,
                                   const char *data, size_t len, int durable);
/* Rewrites the index from f when records outnumber its messages (folder
 * lock held, f up to date). */
void mailproto_maildir_index_tidy(mailproto_maildir *s, md_folder *f);
/* Writes a fresh, empty index with this header into directory `dir`,
 * replacing any (no folder needed). */
int mailproto_maildir_index_create(mailproto_maildir *s, const char *dir,
                                   uint32_t uidvalidity, unsigned special_use);
/* The special-use bits from the header of dir's index (0 when unknown). */
unsigned mailproto_maildir_index_special_use(mailproto_maildir *s,
                                             const char *dir);
/* Record formatting into a growing text buffer. */
typedef struct md_text {
  char *p;
  size_t len, cap;
} md_text;
int mailproto_maildir_text_add(mailproto_maildir *s, md_text *t,
                               const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void mailproto_maildir_text_free(mailproto_maildir *s, md_text *t);
/* An A record for m, whose base name is at `base` (m->base_len bytes). */
int mailproto_maildir_rec_add(mailproto_maildir *s, md_text *t, const md_msg *m,
                              const char *base);
int mailproto_maildir_rec_flags(mailproto_maildir *s, md_text *t,
                                const md_msg *m);
int mailproto_maildir_rec_expunge(mailproto_maildir *s, md_text *t,
                                  uint32_t uid, uint64_t modseq);

/* ---- maildir_folder.c: the in-memory view of a folder ---- */

/* Forgets everything read from the index (not the keyword table). */
void mailproto_maildir_folder_reset(md_folder *f);
/* Index of the first message with uid >= `uid`. */
size_t mailproto_maildir_lower_bound(const md_folder *f, uint32_t uid);
/* The message with `uid`, or NULL. */
md_msg *mailproto_maildir_find(const md_folder *f, uint32_t uid);
/* Room for `extra` more messages. */
int mailproto_maildir_reserve(mailproto_maildir *s, md_folder *f, size_t extra);
/* Room for `extra` more pooled bytes, so later pool_adds of that much
 * cannot fail. NOMEM, LIMIT. */
int mailproto_maildir_pool_reserve(mailproto_maildir *s, md_folder *f,
                                   size_t extra);
/* Stores a name in the pool; sets *off. NOMEM, LIMIT. */
int mailproto_maildir_pool_add(mailproto_maildir *s, md_folder *f,
                               const char *name, size_t len, uint32_t *off);
/* Appends a message (room reserved, UID above all others). */
void mailproto_maildir_push(md_folder *f, const md_msg *m);
/* Sets m's flags and keywords, keeping the counters right. */
void mailproto_maildir_set_msg_flags(md_folder *f, md_msg *m, uint8_t flags,
                                     uint64_t kw);
/* Marks m removed (counters updated); mailproto_maildir_compact drops
 * marked entries and bumps gen. */
void mailproto_maildir_remove(md_folder *f, md_msg *m);
void mailproto_maildir_compact(mailproto_maildir *s, md_folder *f);
/* The tomb of `uid` in an ascending array, or NULL. */
const md_tomb *mailproto_maildir_tomb_find(const md_tomb *t, size_t n,
                                           uint32_t uid);
/* Frees the graves once every handle has synced past them. */
void mailproto_maildir_graves_trim(mailproto_maildir *s, md_folder *f);
/* Renames m to `name` (set MD_ODD and pools it when odd). NOMEM. */
int mailproto_maildir_rename_msg(mailproto_maildir *s, md_folder *f, md_msg *m,
                                 const char *name, int in_new, int odd);

/* ---- maildir_write.c ---- */

/* A new message file's base name: unique, with Dovecot's ",S=<bytes>" and
 * ",W=<RFC822.SIZE>" (out: MD_FILE_MAX + 1 bytes). */
void mailproto_maildir_message_base(mailproto_maildir *s, uint64_t psize,
                                    uint64_t vsize, char *out);
/* Copies a file's bytes to a new file `to` (fsynced, mtime `date`), for
 * when a hard link is not possible. */
int mailproto_maildir_copy_file(mailproto_maildir *s, const char *from,
                                const char *to, int64_t date);

/* ---- maildir_open.c ---- */

/* Live message `uid` of h's folder as h knows it, or NULL: none after the
 * folder went away or was rebuilt under another UIDVALIDITY (until h's
 * sync tells it so, its UIDs are those of before). */
md_msg *mailproto_maildir_handle_msg(const md_handle *h, uint32_t uid);

/* ---- maildir_cache.c ---- */

/* Removes the cache entry of an expunged message (best effort). */
void mailproto_maildir_cache_drop(mailproto_maildir *s, const md_folder *f,
                                  uint32_t uid);

/* ---- maildir_sync.c: disk -> folder ---- */

enum {
  MD_REFRESH_INDEX_ONLY = 0x1, /* the index; skip the directories */
  MD_REFRESH_MOVE_NEW = 0x2,   /* move new/ files to cur/ (read-write) */
  MD_REFRESH_FULL_SCAN = 0x4   /* scan both directories whatever changed */
};
/* Brings f up to date with the disk (see maildir_sync.c). Takes the folder
 * lock when it has to write. NOT_FOUND (the folder is gone: f detached),
 * TEMPORARY, IO, NOMEM, LIMIT. */
int mailproto_maildir_refresh(mailproto_maildir *s, md_folder *f,
                              unsigned mode);
/* Counts of f for `status`; h: that handle's \Recent, else unclaimed. */
void mailproto_maildir_fill_status(const md_folder *f, const md_handle *h,
                                   mailproto_mailbox_status *st);

#endif
