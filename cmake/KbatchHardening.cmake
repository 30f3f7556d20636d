# Hardened build flags for every kbatch target (STYLE.md, item 10).
add_compile_options(-Wall -Wextra -fstack-protector-strong)
if(NOT KBATCH_SANITIZE AND NOT KBATCH_FUZZ)
  add_compile_definitions($<$<NOT:$<CONFIG:Debug>>:_FORTIFY_SOURCE=2>)
endif()
add_link_options(-Wl,-z,relro,-z,now)

if(KBATCH_FUZZ)
  # Instrument every kbatch library for coverage so libFuzzer sees the code it exercises; the
  # fuzz targets themselves add -fsanitize=fuzzer to get libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

if(KBATCH_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# Apply -Wconversion to kbatch's own sources only; third-party headers are not ours to fix.
function(kbatch_strict_warnings target)
  target_compile_options(${target} PRIVATE -Wconversion -Wno-sign-conversion)
endfunction()

# kbatch_module(<name> [PUBLIC_DEPS ...] [PRIVATE_DEPS ...]): one static library per top-level module,
# `kbatch_<name>` with alias `kbatch::<name>`, from <name>/src/**/*.cc, public headers in
# <name>/include/kbatch/<name>/.
function(kbatch_module name)
  cmake_parse_arguments(ARG "" "" "PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cc)
  set(target kbatch_${name})
  if(NOT sources)
    # A module whose sources have not been written yet is header-only until they are.
    add_library(${target} INTERFACE)
    add_library(kbatch::${name} ALIAS ${target})
    target_include_directories(${target} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_link_libraries(${target} INTERFACE ${ARG_PUBLIC_DEPS})
    return()
  endif()
  add_library(${target} STATIC ${sources})
  add_library(kbatch::${name} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                       PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  target_compile_definitions(${target} PRIVATE
    KBATCH_POLICY_PATH="${KBATCH_POLICY_PATH}" KBATCH_CONFIG_PATH="${KBATCH_CONFIG_PATH}"
    KBATCH_VERSION="${PROJECT_VERSION}")
  kbatch_strict_warnings(${target})
endfunction()
