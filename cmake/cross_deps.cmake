# Dependencies of a cross build. Debian's -dev packages hold libraries for the build machine, so
# fmt and spdlog are used header-only (their headers are the same on every architecture, and
# Debian's cross compilers search /usr/include after their own directories) and GoogleTest is
# compiled from Debian's source package.

add_library(pensieve_fmt_header_only INTERFACE)
target_compile_definitions(pensieve_fmt_header_only INTERFACE FMT_HEADER_ONLY)
add_library(fmt::fmt ALIAS pensieve_fmt_header_only)

# Without SPDLOG_COMPILED_LIB spdlog compiles its implementation into the including units;
# Debian's tweakme.h already selects the external fmt.
add_library(pensieve_spdlog_header_only INTERFACE)
target_link_libraries(pensieve_spdlog_header_only INTERFACE fmt::fmt)
add_library(spdlog::spdlog ALIAS pensieve_spdlog_header_only)

if(PENSIEVE_TESTS)
  set(PENSIEVE_GOOGLETEST_SOURCE /usr/src/googletest/googletest CACHE PATH
      "GoogleTest sources for cross builds (Debian package googletest)")
  if(NOT EXISTS ${PENSIEVE_GOOGLETEST_SOURCE}/CMakeLists.txt)
    message(FATAL_ERROR "cross build: no GoogleTest sources at ${PENSIEVE_GOOGLETEST_SOURCE} "
                        "(apt-get install googletest)")
  endif()
  set(INSTALL_GTEST OFF)
  add_subdirectory(${PENSIEVE_GOOGLETEST_SOURCE} ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)
endif()
