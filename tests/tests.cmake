# tests.cmake -- every tests/unit/test_*.c is a Criterion binary; every
# tests/<suite>/run.sh but the fuzzers' is a shell suite.  Tests get the
# paths they need as compile definitions (C) or arguments (shell).
# tests/unit/support/*.c: helpers shared by the suites (naive reference ops,
# compile-and-load of a .dnn through dnnc), linked into every test binary.
file(GLOB DN_TEST_SUPPORT CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/support/*.c)
add_library(dn_test_support STATIC ${DN_TEST_SUPPORT} ${CMAKE_SOURCE_DIR}/tests/unit/support/dummy.c)
target_link_libraries(dn_test_support PUBLIC dnnc_core dnnrt PkgConfig::CRITERION ${CMAKE_DL_LIBS} m)
target_include_directories(dn_test_support PUBLIC ${CMAKE_SOURCE_DIR}/tests/unit/support)
target_compile_definitions(dn_test_support PUBLIC
  DNNC_SOURCE_DIR="${CMAKE_SOURCE_DIR}" DNNC_BUILD_DIR="${CMAKE_BINARY_DIR}"
  DNNC_BIN="$<TARGET_FILE:dnnc>" DNNRUN_BIN="$<TARGET_FILE:dnnrun>")

file(GLOB DN_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${DN_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE dn_test_support PkgConfig::CRITERION)
  add_dependencies(${name} dnnc dnnrun)
  add_test(NAME ${name} COMMAND ${name} --jobs 1)
  set_tests_properties(${name} PROPERTIES TIMEOUT 600)
endforeach()
# test_gpu_ops compiles every case of tests/gpu_ops/ for two targets (each case
# has its own 600 s limit inside): the binary as a whole gets longer.
if(TARGET test_gpu_ops)
  set_tests_properties(test_gpu_ops PROPERTIES TIMEOUT 1500)
endif()

# test_dev_cuda drives the CUDA device layer through a fake driver on host
# memory (tests/unit/mock/cuda_mock.c), loaded as $DNRT_CUDA_LIBRARY.
add_library(cuda_mock MODULE ${CMAKE_SOURCE_DIR}/tests/unit/mock/cuda_mock.c)
set_target_properties(cuda_mock PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
if(TARGET test_dev_cuda)
  add_dependencies(test_dev_cuda cuda_mock)
  target_compile_definitions(test_dev_cuda PRIVATE DN_CUDA_MOCK="$<TARGET_FILE:cuda_mock>")
endif()

# tests/gpu/check.c: the output check of the GPU runs (tests/gpu/run.sh),
# tested here against CPU libraries by test_gpu_check.
add_executable(gpu_check ${CMAKE_SOURCE_DIR}/tests/gpu/check.c)
target_link_libraries(gpu_check PRIVATE ${CMAKE_DL_LIBS} m)
if(TARGET test_gpu_check)
  add_dependencies(test_gpu_check gpu_check)
  target_compile_definitions(test_gpu_check PRIVATE DN_GPU_CHECK="$<TARGET_FILE:gpu_check>")
endif()

# test_example runs the example program built by examples/examples.cmake.
if(TARGET classify AND TARGET test_example)
  add_dependencies(test_example classify)
endif()

file(GLOB DN_SHELL_SUITES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/*/run.sh)
# tests/fuzz/run.sh is the fuzzing campaign (minutes per harness, clang),
# not a suite.
list(REMOVE_ITEM DN_SHELL_SUITES ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh)
# tests/gpu/run.sh runs prepared cases on a GPU machine (other arguments);
# gpu_scripts_cpu below tests it, and prepare.sh, on CPU libraries.
list(REMOVE_ITEM DN_SHELL_SUITES ${CMAKE_SOURCE_DIR}/tests/gpu/run.sh)
foreach(script ${DN_SHELL_SUITES})
  get_filename_component(dir ${script} DIRECTORY)
  get_filename_component(suite ${dir} NAME)
  add_test(NAME ${suite} COMMAND sh ${script} $<TARGET_FILE:dnnc> ${FILECHECK})
  set_tests_properties(${suite} PROPERTIES TIMEOUT 600)
endforeach()

# The suites that check numbers against PyTorch and against formulas run a
# second time on the OpenCL target (PoCL in CI), so every GPU kernel meets the
# tolerances the CPU's do (tests/unit/support/compile.c: DNNC_TEST_TARGET), and
# the runtime, output, example and dnnrun suites check GPU sessions the same way.
# test_resnet's OpenCL run keeps to the tiny ResNet.
set(DN_OPENCL_SUITES test_golden test_optim_golden test_augment test_training test_nonfinite test_resnet
    test_runtime test_outputs test_example test_dnnrun)
list(APPEND DN_OPENCL_SUITES test_shape_golden) # the shape family (concat, slicing, split, chunk, stack)
list(APPEND DN_OPENCL_SUITES test_act_golden)
list(APPEND DN_OPENCL_SUITES test_norm_golden) # layernorm
list(APPEND DN_OPENCL_SUITES test_permute_golden) # permute, expand
list(APPEND DN_OPENCL_SUITES test_sdpa_golden) # scaled_dot_product_attention
list(APPEND DN_OPENCL_SUITES test_mha_golden) # multihead_attention
list(APPEND DN_OPENCL_SUITES test_encoder_golden) # transformer_encoder_layer
list(APPEND DN_OPENCL_SUITES test_vit_golden) # vit_encoder (torchvision naming)
list(APPEND DN_OPENCL_SUITES test_decoder_golden) # transformer_decoder_layer
list(APPEND DN_OPENCL_SUITES test_transformer_golden) # transformer (nn.Transformer)
list(APPEND DN_OPENCL_SUITES test_tied_golden) # embedding and dense sharing one weight
list(APPEND DN_OPENCL_SUITES test_kv_cache) # cached_attention: decoding steps against the full model
list(APPEND DN_OPENCL_SUITES test_flash_attention) # tile-attention: tiled vs untiled on the GPU target
list(APPEND DN_OPENCL_SUITES test_embed_golden)
list(APPEND DN_OPENCL_SUITES test_dnnrun_text) # dnnrun's text and pairs data on a GPU session
foreach(name ${DN_OPENCL_SUITES})
  set(filter "")
  if(name STREQUAL "test_resnet")
    set(filter --filter "resnet/tiny_*")
  endif()
  add_test(NAME ${name}_opencl COMMAND ${name} --jobs 1 ${filter})
  set_tests_properties(${name}_opencl PROPERTIES TIMEOUT 900 ENVIRONMENT DNNC_TEST_TARGET=opencl)
endforeach()

# The check program prepare.sh builds loads dnnc's libraries, so it is built
# with the compiler and sanitizer flags they were.
set(DN_CHECK_CFLAGS "")
if(DNNC_SANITIZE)
  set(DN_CHECK_CFLAGS "-fsanitize=address,undefined")
endif()
add_test(NAME gpu_scripts_cpu COMMAND sh ${CMAKE_SOURCE_DIR}/tests/gpu/selftest_cpu.sh $<TARGET_FILE:dnnc>)
set_tests_properties(gpu_scripts_cpu PROPERTIES TIMEOUT 600
  ENVIRONMENT "CC=${CMAKE_C_COMPILER};CHECK_CFLAGS=${DN_CHECK_CFLAGS}")

# Suites too slow for .ci/run's sanitizer build (DNNC_SANITIZE): they spend
# their time in generated kernels, which the sanitizers do not instrument.
# `ctest -LE slow` leaves them out.
set(DN_SLOW_TESTS test_gemm test_resnet test_resnet_opencl)
set_tests_properties(${DN_SLOW_TESTS} PROPERTIES LABELS slow)

# Under the sanitizers, a report fails its test even where the exit status
# does not say so: Criterion counts a test passed before its worker's leak
# check runs at exit, and shell suites may swallow a child's status.
# Leaks inside PoCL and its LLVM are not ours (tests/lsan.supp says which).
if(DNNC_SANITIZE)
  get_property(dn_all_tests DIRECTORY PROPERTY TESTS)
  set_tests_properties(${dn_all_tests} PROPERTIES
    FAIL_REGULAR_EXPRESSION "ERROR: [A-Za-z]+Sanitizer;runtime error: ")
  set_property(TEST ${dn_all_tests} APPEND PROPERTY ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan.supp:print_suppressions=0")
endif()
