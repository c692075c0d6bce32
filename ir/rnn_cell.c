/* rnn_cell.c -- the table of recurrent cells (rnn_cell.h). */
#include "rnn_cell.h"

#include <string.h>

static const DnRnnCellInfo cells[] = {
    {"rnn_tanh", DN_RNN_TANH, 1, 1, 2},
    {"rnn_relu", DN_RNN_RELU, 1, 1, 2},
    {"lstm", DN_RNN_LSTM, 4, 2, 7},
    {"gru", DN_RNN_GRU, 3, 1, 5},
};

const DnRnnCellInfo *dn_rnn_cell(const char *name)
{
    for (unsigned i = 0; i < sizeof cells / sizeof cells[0]; i++)
        if (!strcmp(cells[i].name, name)) return &cells[i];
    return 0;
}
