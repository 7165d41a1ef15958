include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/mailproto"
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS mailproto mailproto_static
        EXPORT mailprotoTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(_cmakedir "${CMAKE_INSTALL_LIBDIR}/cmake/mailproto")
install(EXPORT mailprotoTargets NAMESPACE mailproto:: DESTINATION ${_cmakedir})
configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/mailprotoConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/mailprotoConfig.cmake"
  INSTALL_DESTINATION ${_cmakedir})
# Below 1.0 a minor release may break the ABI, matching the SOVERSION.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(_compat SameMinorVersion)
else()
  set(_compat SameMajorVersion)
endif()
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/mailprotoConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY ${_compat})
install(FILES "${PROJECT_BINARY_DIR}/mailprotoConfig.cmake"
              "${PROJECT_BINARY_DIR}/mailprotoConfigVersion.cmake"
        DESTINATION ${_cmakedir})

# pkg-config: relocatable (prefix found from the .pc file's own place, so
# `cmake --install --prefix X` works); the shared library by default; `pkg-config --static` users get
# MAILPROTO_STATIC through Cflags.private.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(MAILPROTO_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _up "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
  string(REGEX REPLACE "/$" "" _up "${_up}")
  set(MAILPROTO_PC_PREFIX "\${pcfiledir}/${_up}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(MAILPROTO_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(MAILPROTO_PC_LIBDIR "\${exec_prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(MAILPROTO_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(MAILPROTO_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/mailproto.pc.in"
               "${PROJECT_BINARY_DIR}/mailproto.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/mailproto.pc"
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
