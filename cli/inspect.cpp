// qvl inspect — placeholder until the loader lands (replaced by the loader work).
#include "cli/commands.h"
#include "kernels/base.h"

namespace qvl::cli {
int cmd_inspect(int argc, char** argv) { throw Error("inspect: not implemented yet"); }
}  // namespace qvl::cli
