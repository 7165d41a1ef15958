set(MAILPROTO_STORE_SOURCES
  store/mailbox_name.c
  store/memstore.c
  store/store_call.c)
