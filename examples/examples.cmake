# examples.cmake -- programs that link libraries written by dnnc.
# dnnc compiles examples/lenet.dnn into ${CMAKE_BINARY_DIR}/examples/lenet.so
# and lenet.h; `classify` (examples/classify.c) includes the header and links
# the library directly, with an rpath so it runs from the build tree.
set(DN_EXAMPLES_OUT ${CMAKE_BINARY_DIR}/examples)

add_custom_command(
  OUTPUT ${DN_EXAMPLES_OUT}/lenet.so ${DN_EXAMPLES_OUT}/lenet.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${DN_EXAMPLES_OUT}
  COMMAND $<TARGET_FILE:dnnc> ${CMAKE_SOURCE_DIR}/examples/lenet.dnn -o ${DN_EXAMPLES_OUT}/lenet.so
  DEPENDS dnnc dnnrt ${CMAKE_SOURCE_DIR}/examples/lenet.dnn
  COMMENT "dnnc examples/lenet.dnn -o examples/lenet.so"
  VERBATIM)
add_custom_target(lenet_so ALL DEPENDS ${DN_EXAMPLES_OUT}/lenet.so ${DN_EXAMPLES_OUT}/lenet.h)

# Linked as -l:lenet.so (its soname is lenet.so too), so the program records
# plain "lenet.so", which the rpath finds in the build tree (and
# LD_LIBRARY_PATH or a copy next to an installed binary elsewhere).
add_executable(classify ${CMAKE_SOURCE_DIR}/examples/classify.c ${CMAKE_SOURCE_DIR}/tools/idx.c)
target_include_directories(classify PRIVATE ${DN_EXAMPLES_OUT} ${CMAKE_SOURCE_DIR}/tools)
target_link_libraries(classify PRIVATE -L${DN_EXAMPLES_OUT} -l:lenet.so ZLIB::ZLIB m)
add_dependencies(classify lenet_so)
set_target_properties(classify PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${DN_EXAMPLES_OUT}
  BUILD_RPATH ${DN_EXAMPLES_OUT}
  LINK_DEPENDS ${DN_EXAMPLES_OUT}/lenet.so)

# attention_weights (examples/attention_weights.c): prints the attention of a
# trained examples/seq2seq_attention.dnn library for one number; built here
# so that it keeps compiling (it opens the library through dlopen).
add_executable(attention_weights ${CMAKE_SOURCE_DIR}/examples/attention_weights.c)
target_include_directories(attention_weights PRIVATE ${CMAKE_SOURCE_DIR}/runtime/include)
target_link_libraries(attention_weights PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(attention_weights PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${DN_EXAMPLES_OUT})
