# mailproto_warnings(target): the project's warning set, each flag checked
# for support so gcc and clang both build warning-free.
include(CheckCCompilerFlag)

set(_mailproto_warning_candidates
    -Wall -Wextra -Wshadow -Wconversion -Wsign-conversion -Wstrict-prototypes
    -Wmissing-prototypes -Wformat=2 -Wvla -Wimplicit-fallthrough
    -Wpointer-arith -Wcast-qual -Wundef -Wwrite-strings -Wold-style-definition
    -Wnull-dereference -Wdouble-promotion)
set(MAILPROTO_WARNING_FLAGS "")
foreach(flag IN LISTS _mailproto_warning_candidates)
  string(MAKE_C_IDENTIFIER "HAVE_C${flag}" var)
  check_c_compiler_flag(${flag} ${var})
  if(${var})
    list(APPEND MAILPROTO_WARNING_FLAGS ${flag})
  endif()
endforeach()
if(MAILPROTO_WERROR)
  list(APPEND MAILPROTO_WARNING_FLAGS -Werror)
endif()

function(mailproto_warnings target)
  target_compile_options(${target} PRIVATE ${MAILPROTO_WARNING_FLAGS})
endfunction()

# Test code uses Check's macros, which trip the sign-conversion checks
# inside their own expansions; keep everything else.
function(mailproto_test_warnings target)
  set(flags ${MAILPROTO_WARNING_FLAGS})
  list(REMOVE_ITEM flags -Wsign-conversion -Wconversion)
  target_compile_options(${target} PRIVATE ${flags})
endfunction()
