# tests/fuzz/fuzz.cmake -- libFuzzer harnesses for the untrusted inputs:
# .dnn sources (fuzz_frontend), IR text (fuzz_ir_read), safetensors files
# (fuzz_safetensors) and IDX data files (fuzz_idx, over tools/idx.c).  Built only when configured with -DDNNC_FUZZ=ON and a
# clang C compiler:
#     CC=clang cmake -S . -B build-fuzz -DDNNC_FUZZ=ON
#     cmake --build build-fuzz --target fuzzers
# The code under test (ir/, frontend/, passes/, runtime/; tools/idx.c for
# fuzz_idx) is compiled a second time, into libraries private to the fuzzers, with coverage
# instrumentation and ASan + UBSan; the rest of the build is unchanged.
# How to run them: tests/fuzz/README.md (tests/fuzz/run.sh builds and runs).
option(DNNC_FUZZ "build the libFuzzer harnesses of tests/fuzz (needs clang)" OFF)

if(DNNC_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(WARNING "DNNC_FUZZ=ON needs clang as the C compiler (CC=clang), "
                    "not ${CMAKE_C_COMPILER_ID}: the fuzzers are not built")
  else()
    set(DN_FUZZ_SAN -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1)
    file(GLOB DN_FUZZ_CORE_SOURCES CONFIGURE_DEPENDS
         ${CMAKE_SOURCE_DIR}/ir/*.c ${CMAKE_SOURCE_DIR}/frontend/*.c ${CMAKE_SOURCE_DIR}/passes/*.c)
    file(GLOB DN_FUZZ_RT_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/runtime/*.c)
    add_library(dnnc_fuzz_lib STATIC ${DN_FUZZ_CORE_SOURCES} ${DN_FUZZ_RT_SOURCES})
    target_include_directories(dnnc_fuzz_lib PUBLIC ${CMAKE_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/runtime/include)
    target_compile_options(dnnc_fuzz_lib PRIVATE ${DN_FUZZ_SAN} -fsanitize=fuzzer-no-link)
    target_link_libraries(dnnc_fuzz_lib PUBLIC Threads::Threads m)

    add_custom_target(fuzzers)
    foreach(name fuzz_frontend fuzz_ir_read fuzz_safetensors)
      add_executable(${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/${name}.c)
      target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz)
      target_compile_options(${name} PRIVATE ${DN_FUZZ_SAN} -fsanitize=fuzzer)
      target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
      target_link_libraries(${name} PRIVATE dnnc_fuzz_lib)
      add_dependencies(fuzzers ${name})
    endforeach()

    # The IDX reader of dnnrun and the example program, with zlib.
    add_executable(fuzz_idx ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_idx.c ${CMAKE_SOURCE_DIR}/tools/idx.c)
    target_include_directories(fuzz_idx PRIVATE ${CMAKE_SOURCE_DIR}/tools)
    target_compile_options(fuzz_idx PRIVATE ${DN_FUZZ_SAN} -fsanitize=fuzzer)
    target_link_options(fuzz_idx PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_idx PRIVATE ZLIB::ZLIB)
    add_dependencies(fuzzers fuzz_idx)
  endif()
endif()
