#!/bin/sh
# Interop: Dovecot reads a Maildir this library wrote, and this library
# reads it back after Dovecot changed it.
#   interop_dovecot.sh MAILDIR_FILL
# 1. maildir_fill writes messages, flags, keywords, folders and
#    subscriptions through the Maildir store and prints what must be seen.
# 2. doveadm (Dovecot's own reader, no server needed) must see exactly
#    that: the same messages in the same folders, the same flags and
#    keywords, the same RFC822.SIZE, the same subscriptions.
# 3. doveadm changes flags, expunges, saves new mail; the store must see
#    those changes and keep the UIDs of every message it knew.
# Exit 77 (skipped) when doveadm is not installed (Debian: dovecot-imapd).
set -eu

fill=${1:?usage: interop_dovecot.sh MAILDIR_FILL}
if ! command -v doveadm >/dev/null 2>&1; then
  echo "doveadm not found (apt-get install dovecot-imapd): skipped"
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mailproto-interop-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mail=$work/mail
LC_ALL=C
export LC_ALL

"$fill" "$mail" user1 >"$work/expected"
"$fill" --dump "$mail" user1 >"$work/ours-before"

# Dovecot refuses to touch mail as root: then it runs as nobody.
if [ "$(id -u)" -eq 0 ]; then
  uid=$(id -u nobody)
  gid=$(id -g nobody)
  chown -R "$uid:$gid" "$work"
else
  uid=$(id -u)
  gid=$(id -g)
fi
cat >"$work/dovecot.conf" <<EOF
base_dir = $work/run
state_dir = $work/state
log_path = /dev/stderr
ssl = no
EOF
dv() {
  USER=user1 HOME="$mail/user1" doveadm -c "$work/dovecot.conf" \
    -o mail_uid="$uid" -o mail_gid="$gid" \
    -o first_valid_uid=0 -o first_valid_gid=0 \
    -o "mail_location=maildir:$mail/user1:INDEX=MEMORY" "$@"
}

# Dovecot's view as "mailbox<TAB>subject<TAB>flags<TAB>size" lines, flags
# sorted, \Recent (Dovecot's own session state) left out.
dovecot_view() {
  dv -f tab fetch 'mailbox hdr.subject flags size.virtual' all | tail -n +2 |
    while IFS='	' read -r box subject flags size; do
      sorted=$(printf '%s\n' $flags | grep -v '^\\Recent$' | sort | paste -sd ' ' -)
      printf '%s\t%s\t%s\t%s\n' "$box" "$subject" "$sorted" "$size"
    done
  dv mailbox list -s | sed 's/^/subscribed	/'
}

fail=0
check() { # name expected actual
  if ! diff -u "$2" "$3"; then
    echo "FAIL: $1"
    fail=1
  fi
}

dovecot_view | sort >"$work/dovecot"
sort "$work/expected" >"$work/expected.sorted"
check "Dovecot reads what the store wrote" "$work/expected.sorted" \
  "$work/dovecot"
cut -f1-4 "$work/ours-before" | sort >"$work/ours"
grep -v '^subscribed' "$work/expected.sorted" >"$work/expected.msgs"
check "the store reads back what it wrote" "$work/expected.msgs" "$work/ours"

# Dovecot changes the Maildir the way it does for its own clients.
dv flags add '\Answered Work' mailbox INBOX header subject plain
dv flags remove '\Seen' mailbox INBOX header subject seen-flagged
dv expunge mailbox INBOX header subject deleted
printf 'Subject: from-dovecot\r\n\r\nsaved\r\n' | dv save -m Work.Reports
dv mailbox create Archive
printf 'Subject: archived\r\n\r\nold\r\n' | dv save -m Archive

"$fill" --dump "$mail" user1 >"$work/ours-after"
sed -e 's/^\(INBOX	plain	\)	/\1Work \\Answered	/' \
  -e 's/^\(INBOX	seen-flagged	\\Flagged\) \\Seen/\1/' \
  -e '/^INBOX	deleted	/d' "$work/expected.msgs" >"$work/expected-after"
printf 'Work.Reports\tfrom-dovecot\t\t32\nArchive\tarchived\t\t26\n' \
  >>"$work/expected-after"
sort "$work/expected-after" >"$work/expected-after.sorted"
cut -f1-4 "$work/ours-after" | sort >"$work/ours-after.msgs"
check "the store reads what Dovecot changed" "$work/expected-after.sorted" \
  "$work/ours-after.msgs"

# UIDs survive other programs' renames: every message the store knew
# before keeps its UID.
uids() { cut -f1,2,5 "$1" | sort; }
uids "$work/ours-before" | grep -v '	deleted	' >"$work/uids-before"
uids "$work/ours-after" | grep -v -e '	from-dovecot	' -e '	archived	' \
  >"$work/uids-after"
check "UIDs are stable across Dovecot's changes" "$work/uids-before" \
  "$work/uids-after"

if [ "$fail" -ne 0 ]; then
  echo "files:"
  find "$mail" -type f | sort
  exit 1
fi
echo "interop with Dovecot $(dovecot --version 2>/dev/null || echo '(version unknown)'): ok"
