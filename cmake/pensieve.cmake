# Shared compile flags and helpers for every pensieve target.

add_library(pensieve_flags INTERFACE)
target_compile_options(pensieve_flags INTERFACE -Wall -Wextra -Wshadow)
if(PENSIEVE_WERROR)
  target_compile_options(pensieve_flags INTERFACE -Werror)
endif()
if(PENSIEVE_NATIVE)
  target_compile_options(pensieve_flags INTERFACE -march=native)
endif()
if(PENSIEVE_SANITIZE)
  add_compile_options(-fsanitize=${PENSIEVE_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${PENSIEVE_SANITIZE})
endif()

# Where tests find the read-only shared data (models, vocabularies, fixtures).
set(PENSIEVE_SHARED_DIR "${PROJECT_SOURCE_DIR}/../shared" CACHE PATH "Shared test data")
set(PENSIEVE_TEST_DATA_DIR "${PROJECT_SOURCE_DIR}/tests")

# pensieve_library(NAME SOURCES... DEPS ...): a static library for one src/ folder.
function(pensieve_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE pensieve_flags)
endfunction()

# pensieve_test(NAME SOURCES... DEPS ...): one GoogleTest executable, each TEST a ctest test.
# PENSIEVE_TEST_FILTER, when set, keeps only the executables whose names match it.
function(pensieve_test name)
  if(NOT PENSIEVE_TESTS)
    return()
  endif()
  if(PENSIEVE_TEST_FILTER AND NOT name MATCHES "${PENSIEVE_TEST_FILTER}")
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} pensieve_flags GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    PENSIEVE_SHARED_DIR="${PENSIEVE_SHARED_DIR}"
    PENSIEVE_TEST_DATA_DIR="${PENSIEVE_TEST_DATA_DIR}")
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60)
endfunction()
