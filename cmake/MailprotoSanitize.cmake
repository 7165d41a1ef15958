# MAILPROTO_SANITIZE: AddressSanitizer + UndefinedBehaviorSanitizer on
# everything built here, with UB reports fatal so tests fail on them.
if(MAILPROTO_SANITIZE)
  set(_san -fsanitize=address,undefined -fno-sanitize-recover=all
           -fno-omit-frame-pointer)
  add_compile_options(${_san})
  add_link_options(-fsanitize=address,undefined)
endif()

# MAILPROTO_BUILD_FUZZERS: libFuzzer needs clang; coverage instrumentation
# goes on everything so the fuzzer sees inside the library.
if(MAILPROTO_BUILD_FUZZERS)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MAILPROTO_BUILD_FUZZERS needs clang (CC=clang)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
  add_link_options(-fsanitize=fuzzer-no-link)
endif()
