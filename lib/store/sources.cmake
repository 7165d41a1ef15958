set(MAILPROTO_STORE_SOURCES
  store/mailbox_name.c
  store/memstore.c
  store/memstore_change.c
  store/memstore_open.c
  store/memstore_tree.c
  store/memstore_write.c
  store/store_call.c)
