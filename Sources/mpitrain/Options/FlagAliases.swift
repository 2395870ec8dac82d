import ArgumentParser

/// Other names for flags, rewritten to the current ones before parsing so that help lists each
/// flag once: the names subcommands used before one name per idea (`plan --algo` is
/// `--plan-algo`, as in `dlrm`), and the DLRM reference's (`dlrm_s_pytorch.py`) names for
/// `dlrm`'s flags. A reference flag with no meaning here stops with what to use instead.
enum FlagAliases {
    enum Alias {
        /// Another name of the flag.
        case renamed(String)
        /// Another name, whose values are spelled differently too.
        case renamedValues(String, [String: String])
        /// Asks for what MPITrain always does: accepted and dropped, when its value (if it
        /// takes one) is `value`.
        case always(value: String?, because: String)
        /// No meaning here; the text says what to use instead.
        case unsupported(String)
    }

    /// The aliases of each command, by its path ("plan dry-run").
    static let byCommand: [String: [String: Alias]] = {
        let json: [String: Alias] = ["--metrics": .renamed("--json")]
        return [
            "dlrm": dlrmReference.merging(["--json": .renamed("--metrics")]) { $1 },
            "gnn": ["--report-every": .renamed("--print-every"), "--json": .renamed("--metrics")],
            "plan dry-run": ["--batch": .renamed("--batch-size"), "--algo": .renamed("--plan-algo"), "--refine": .renamed("--plan-refine"),
                             "--refine-seconds": .renamed("--plan-refine-seconds")],
            "plan eval": json.merging(["--refine": .renamed("--plan-refine")]) { $1 },
            "plan headroom": json,
            "bench comm": json, "bench data": json, "bench dlrm": json, "bench gnn": json,
        ]
    }()

    /// `dlrm_s_pytorch.py`'s flags that `dlrm` does not spell the same way.
    private static let dlrmReference: [String: Alias] = [
        "--mini-batch-size": .renamed("--batch-size"),
        "--num-batches": .renamed("--steps"),
        "--print-freq": .renamed("--print-every"),
        "--test-freq": .renamed("--eval-every"),
        "--learning-rate": .renamed("--lr"),
        "--numpy-rand-seed": .renamed("--seed"),
        "--raw-data-file": .renamed("--data-path"),
        "--max-ind-range": .renamed("--arch-embedding-size"),
        "--data-generation": .renamedValues("--data", ["random": "synthetic", "dataset": "criteo"]),
        "--loss-function": .always(value: "bce", because: "dlrm trains with binary cross-entropy only"),
        "--round-targets": .always(value: "true", because: "click labels are 0 or 1 already"),
        "--num-indices-per-lookup-fixed": .always(value: "true", because: "bags have a fixed size unless --random-pooling"),
        "--activation-function": .always(value: "relu", because: "the MLPs use ReLU"),
        "--sync-dense-params": .always(value: "true", because: "MLP gradients are allreduced every step"),
        "--print-time": .always(value: nil, because: "every progress line prints samples/s and an ETA"),
        "--print-wall-time": .always(value: nil, because: "every progress line prints samples/s and an ETA"),
        "--nepochs": .unsupported("runs are counted in steps: --steps N (data read once stops at its end)"),
        "--data-size": .unsupported("synthetic data draws --steps x --batch-size samples"),
        "--data-set": .unsupported("Criteo Kaggle and Terabyte files are both read by --data criteo --data-path FILES"),
        "--processed-data-file": .unsupported("preprocess once with `mpitrain data preprocess --data-path RAW --out DIR`, then --data criteo-bin --data-path DIR"),
        "--memory-map": .unsupported("--data criteo-bin maps the preprocessed files"),
        "--data-randomize": .unsupported("samples are read in file order"),
        "--data-trace-file": .unsupported("--tables gives each table's rows, pooling and index distribution"),
        "--data-trace-enable-padding": .unsupported("--tables gives each table's rows, pooling and index distribution"),
        "--rand-data-dist": .unsupported("--index-distribution (or a table's distribution in --tables)"),
        "--rand-data-min": .unsupported("--index-distribution (or a table's distribution in --tables)"),
        "--rand-data-max": .unsupported("--index-distribution (or a table's distribution in --tables)"),
        "--rand-data-mu": .unsupported("--index-distribution (or a table's distribution in --tables)"),
        "--rand-data-sigma": .unsupported("--index-distribution (or a table's distribution in --tables)"),
        "--test-mini-batch-size": .unsupported("held-out samples are predicted in slices of max(--batch-size, 4096); --eval-samples sets how many"),
        "--test-num-workers": .unsupported("each rank parses on a thread of its own"),
        "--num-workers": .unsupported("each rank parses on a thread of its own"),
        "--save-model": .unsupported("--checkpoint-dir DIR (with --checkpoint-every N)"),
        "--load-model": .unsupported("--checkpoint-dir DIR --resume"),
        "--enable-profiling": .unsupported("--trace FILE writes a Chrome/Perfetto trace of every rank"),
        "--plot-compute-graph": .unsupported("--trace FILE, then `mpitrain report`"),
        "--debug-mode": .unsupported("--trace FILE and --metrics FILE"),
        "--use-gpu": .unsupported("MPITrain trains on CPUs; drop it"),
        "--dist-backend": .unsupported("the backend is MPI: start ranks with `./launch run -n N -- dlrm ...` or mpirun"),
        "--inference-only": .unsupported("--steps 0 with --checkpoint-dir DIR --resume evaluates a checkpoint"),
        "--mlperf-logging": .unsupported("--metrics FILE writes JSON lines"),
        "--mlperf-acc-threshold": .unsupported("runs end at --steps"),
        "--mlperf-auc-threshold": .unsupported("runs end at --steps"),
        "--mlperf-bin-loader": .unsupported("--data criteo-bin"),
        "--mlperf-bin-shuffle": .unsupported("samples are read in file order"),
        "--loss-threshold": .unsupported("runs end at --steps"),
        "--md-flag": .unsupported("--tables gives each table its own dim"),
        "--qr-flag": .unsupported("no compositional embeddings; --tables with smaller tables"),
        "--arch-project-size": .unsupported("--arch-interaction-op dot or cat"),
        "--arch-interaction-itself": .unsupported("the dot interaction pairs distinct features"),
        "--weighted-pooling": .unsupported("bags are sum-pooled"),
        "--quantize-emb-with-bit": .unsupported("tables are float32"),
        "--quantize-mlp-with-bit": .unsupported("MLPs are float32"),
        "--print-precision": .unsupported("lines print 5 decimals"),
        "--save-onnx": .unsupported("checkpoints hold the weights: --checkpoint-dir DIR"),
        "--dataset-multiprocessing": .unsupported("each rank parses on a thread of its own"),
    ]

    /// `arguments` with every alias of the command they name replaced by its current name.
    /// - Throws: `ValidationError` for a flag with no meaning here, or a value an `always`
    ///   flag cannot take.
    static func rewrite(_ arguments: [String]) throws -> [String] {
        let (path, start) = commandPath(arguments)
        guard let aliases = byCommand[path.dropFirst().map(commandName).joined(separator: " ")] else { return arguments }
        var result = Array(arguments[..<start])
        var i = start
        while i < arguments.count {
            let argument = arguments[i]
            i += 1
            if argument == "--" {
                result += arguments[(i - 1)...]
                break
            }
            let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
            guard argument.hasPrefix("--"), let alias = aliases[parts[0]] else {
                result.append(argument)
                continue
            }
            /// The flag's value: after `=`, else the next argument.
            func value() -> String? {
                if parts.count == 2 { return parts[1] }
                guard i < arguments.count, !arguments[i].hasPrefix("--") else { return nil }
                defer { i += 1 }
                return arguments[i]
            }
            switch alias {
            case .renamed(let name):
                result.append(parts.count == 2 ? "\(name)=\(parts[1])" : name)
            case .renamedValues(let name, let values):
                guard let given = value() else { result.append(name); continue }
                result += [name, values[given.lowercased()] ?? given]
            case .always(let expected, let because):
                guard let expected else { continue }
                let given = value()
                guard given?.lowercased() == expected else {
                    throw ValidationError("\(parts[0]) \(given ?? "(no value)"): \(because); only \(parts[0]) \(expected) is accepted")
                }
            case .unsupported(let instead):
                throw ValidationError("\(parts[0]) has no meaning here: \(instead)")
            }
        }
        return result
    }

    /// The command that `arguments` name ([MPITrain, PlanCommand, DryRun] for `plan --tables
    /// ...`, default subcommands included) and the index of its first argument.
    static func commandPath(_ arguments: [String]) -> (path: [ParsableCommand.Type], start: Int) {
        var path: [ParsableCommand.Type] = [MPITrain.self]
        var start = 0
        while true {
            let configuration = path.last!.configuration
            if start < arguments.count, let next = configuration.subcommands.first(where: { commandName($0) == arguments[start] }) {
                path.append(next)
                start += 1
            } else if let fallback = configuration.defaultSubcommand {
                path.append(fallback)
            } else {
                return (path, start)
            }
        }
    }

    /// "Unexpected argument 'plann'" gains "; did you mean 'plan'?" when a subcommand's name is
    /// that close (ArgumentParser suggests options, not subcommands).
    static func suggestingSubcommand(_ message: String, arguments: [String]) -> String {
        guard let quoted = message.firstMatch(of: /^Unexpected argument '([^']+)'$/)?.1 else { return message }
        let (path, start) = commandPath(arguments)
        // The word is where a subcommand could stand: right after the command path.
        guard start < arguments.count, arguments[start] == quoted else { return message }
        let names = path.last!.configuration.subcommands.map(commandName)
        let near = names.map { ($0, editDistance(String(quoted), $0)) }.filter { $0.1 <= max(1, $0.0.count / 3) }.min { $0.1 < $1.1 }
        return near.map { "\(message); did you mean '\($0.0)'?" } ?? message
    }

    private static func commandName(_ command: ParsableCommand.Type) -> String {
        command.configuration.commandName ?? "\(command)".lowercased()
    }

    /// Insertions, deletions and substitutions that turn `a` into `b`.
    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
