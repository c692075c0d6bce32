/* api.c -- the generic interface table every generated descriptor points
 * at (dnrt_model_desc.api), so a program that dlopens a library can drive
 * it without its typed header. */
#include "internal.h"

const dnrt_api dnrt_api_v1 = {
    .create = dnrt_session_create,
    .destroy = dnrt_session_destroy,
    .load = dnrt_session_load,
    .save = dnrt_session_save,
    .infer = dnrt_session_infer,
    .train_step = dnrt_session_train_step,
    .set_lr = dnrt_session_set_lr,
    .get_lr = dnrt_session_get_lr,
    .get_step = dnrt_session_get_step,
    .set_learning_rate = dnrt_session_set_learning_rate,
    .device_info = dnrt_session_device_info,
    .infer_seq = dnrt_session_infer_seq,
    .train_step_seq = dnrt_session_train_step_seq,
};
