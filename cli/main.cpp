// qvl command-line entry point: dispatches to one command per file and turns
// every qvl::Error into a one-line message and a non-zero exit.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "kernels/base.h"

namespace {

struct Command {
  const char* name;
  int (*fn)(int, char**);
  const char* help;
};

// Commands register here (one line each).
const Command kCommands[] = {
    {"run", qvl::cli::cmd_run, "generate a streamed answer for a prompt (text and images)"},
    {"chat", qvl::cli::cmd_chat, "interactive multi-turn chat (KV cache kept across turns)"},
    {"inspect", qvl::cli::cmd_inspect, "list graph I/O, ops and initializers of an .onnx file or model folder"},
    {"compare", qvl::cli::cmd_compare, "compare qvl tensors with ONNX Runtime, golden HF files, or per kernel"},
    {"profile", qvl::cli::cmd_profile, "run one request with timing zones on: per-layer tables, GFLOP/s, GB/s, Chrome trace"},
    {"bench", qvl::cli::cmd_bench, "prefill/decode/vision speed, load time, peak RSS, bandwidth roofline (Release builds)"},
    {"tokenize", qvl::cli::cmd_tokenize, "print the token ids of a text (or of a chat rendered by the template)"},
    {"detokenize", qvl::cli::cmd_detokenize, "print the text of token ids"},
};

void usage(FILE* f) {
  std::fprintf(f, "usage: qvl <command> [options]   (qvl <command> --help for its flags)\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(f, "  %-12s %s\n", c.name, c.help);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) == 0) {
      try {
        return c.fn(argc - 1, argv + 1);
      } catch (const qvl::Error& e) {
        std::fprintf(stderr, "qvl: error: %s\n", e.what());
        return 1;
      } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "qvl: error: out of memory\n");
        return 1;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "qvl: error: %s\n", e.what());
        return 1;
      }
    }
  }
  std::fprintf(stderr, "qvl: error: unknown command '%s' (see qvl --help)\n", argv[1]);
  return 2;
}
