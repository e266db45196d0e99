"""`completion bash|zsh|fish`: shell completion generated from the parser itself, so it never
falls behind the commands."""

from __future__ import annotations

import argparse

from monitor.cli.common import EXIT_OK, Commands, with_examples

PROG = "inventory-monitor"


def register(commands: Commands) -> None:
    completion = commands.add_parser(
        "completion",
        help="print shell completion for bash, zsh or fish",
        description="Print shell completion for bash, zsh or fish.",
        **with_examples(
            [
                f"completion bash > ~/.local/share/bash-completion/completions/{PROG}",
                f"completion fish > ~/.config/fish/completions/{PROG}.fish",
            ]
        ),
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    completion.set_defaults(handler=_completion)


def _completion(args: argparse.Namespace) -> int:
    from monitor.cli.main import parser

    words = commands_of(parser())
    script = {"bash": bash, "zsh": zsh, "fish": fish}[args.shell](words)
    print(script, end="")
    return EXIT_OK


def commands_of(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """Every command path ("deliveries retry" included) with its options and subcommands."""
    found: dict[str, list[str]] = {}

    def walk(current: argparse.ArgumentParser, path: str) -> None:
        words: list[str] = []
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    words.append(name)
                    walk(sub, f"{path} {name}".strip())
            else:
                words.extend(option for option in action.option_strings if option.startswith("--"))
        found[path] = words

    walk(parser, "")
    return found


def bash(commands: dict[str, list[str]]) -> str:
    paths = [path for path in commands if path]
    known = "|".join(f'"{path}"' for path in paths)
    cases = "\n".join(f'        "{path}") words="{" ".join(commands[path])}" ;;' for path in paths)
    return f"""# bash completion for {PROG}
_inventory_monitor() {{
    local current="${{COMP_WORDS[COMP_CWORD]}}" path="" word words
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "${{path:+$path }}$word" in
            {known}) path="${{path:+$path }}$word" ;;
        esac
    done
    case "$path" in
{cases}
        *) words="{" ".join(commands[""])}" ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$current"))
}}
complete -o default -F _inventory_monitor {PROG}
"""


def zsh(commands: dict[str, list[str]]) -> str:
    return f"# zsh completion for {PROG}\nautoload -U +X bashcompinit && bashcompinit\n" + bash(
        commands
    )


def fish(commands: dict[str, list[str]]) -> str:
    lines = [f"# fish completion for {PROG}", f"complete -c {PROG} -f"]
    for path, words in commands.items():
        condition = (
            "__fish_use_subcommand"
            if not path
            else f"__fish_seen_subcommand_from {path.split()[-1]}"
        )
        subcommands = [word for word in words if not word.startswith("--")]
        if subcommands:
            lines.append(f"complete -c {PROG} -n '{condition}' -a '{' '.join(subcommands)}'")
        lines.extend(
            f"complete -c {PROG} -n '{condition}' -l {word[2:]}"
            for word in words
            if word.startswith("--")
        )
    return "\n".join(lines) + "\n"
