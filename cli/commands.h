// One function per `qvl` subcommand; each lives in its own cli/<name>.cpp.
// argv[0] is the subcommand name. Return the process exit code.
#pragma once

namespace qvl::cli {
int cmd_inspect(int argc, char** argv);
int cmd_compare(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_chat(int argc, char** argv);
int cmd_profile(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_detokenize(int argc, char** argv);
}  // namespace qvl::cli
