set(MAILPROTO_POP3_SOURCES
  pop3/pop3_auth.c
  pop3/pop3_command.c
  pop3/pop3_maildrop.c
  pop3/pop3_session.c
  pop3/pop3_stream.c)
