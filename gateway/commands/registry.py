"""`greenroom registry build|list|add-talent|add-ip|remove`: the talent and IP registry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import ValidationError

from gateway.config import load_config
from gateway.config.models import IntellectualProperty, Talent
from gateway.errors import ConfigError
from gateway.registry.entry import add_ip, add_talent, remove_entry

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("registry", help="registered talent and IP, and their media index")
    sub = parser.add_subparsers(dest="registry_command", metavar="ACTION", required=True)

    build = sub.add_parser("build", help="fingerprint every registered image, face and voice into the data dir")
    _config_argument(build)
    build.add_argument("--data-dir", type=Path, default=Path("var"), help="data directory (default ./var)")
    build.set_defaults(handler=_build)

    lst = sub.add_parser("list", help="list registered talent and IP")
    _config_argument(lst)
    lst.add_argument("--format", choices=("text", "json"), default="text")
    lst.set_defaults(handler=_list)

    talent = sub.add_parser("add-talent", help="register a performer with reference photos and voice clips")
    _config_argument(talent)
    talent.add_argument("--id", required=True, help="lower-case id (letters, digits, . _ -)")
    talent.add_argument("--name", required=True, help="the performer's name")
    talent.add_argument("--alias", action="append", default=[], help="another name or spelling (repeatable)")
    talent.add_argument("--photo", action="append", default=[], type=Path, help="reference face photo (repeatable)")
    talent.add_argument("--voice", action="append", default=[], type=Path, help="reference voice clip (repeatable)")
    talent.add_argument("--union", default="", help="union status, e.g. SAG-AFTRA")
    talent.set_defaults(handler=_add_talent)

    work = sub.add_parser("add-ip", help="register a work: title, characters, images, scripts")
    _config_argument(work)
    work.add_argument("--id", required=True, help="lower-case id (letters, digits, . _ -)")
    work.add_argument("--title", required=True, help="the work's title")
    work.add_argument("--owner", default="", help="rights holder")
    work.add_argument("--character", action="append", default=[], help="character name (repeatable)")
    work.add_argument("--term", action="append", default=[], help="other distinctive term (repeatable)")
    work.add_argument("--image", action="append", default=[], type=Path, help="still, poster or logo (repeatable)")
    work.add_argument("--script", action="append", default=[], type=Path, help="script or document (repeatable)")
    work.set_defaults(handler=_add_ip)

    remove = sub.add_parser("remove", help="remove a talent or IP entry and its files")
    _config_argument(remove)
    remove.add_argument("--id", required=True, help="the entry's id")
    remove.set_defaults(handler=_remove)


def _config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="configuration directory")


def _build(args: argparse.Namespace) -> int:
    from gateway.registry import build_index  # the matching libraries load only for this command

    index = build_index(load_config(args.config), args.data_dir)
    print(
        f"registry index {index.digest[:16]}: {index.images.asset_count} IP images, "
        f"{len(index.faces.talent)} reference faces, {len(index.voices.talent)} voice enrolments → {index.path}"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    registry = load_config(args.config).config.registry
    if args.format == "json":
        print(json.dumps(registry.model_dump(mode="json"), indent=2))
        return 0
    for person in registry.talent:
        aliases = f" (aka {', '.join(person.aliases)})" if person.aliases else ""
        union = f", {person.union}" if person.union else ""
        print(f"talent {person.id:<24} {person.name}{aliases}{union}: "
              f"{len(person.photos)} photos, {len(person.voices)} voice clips")
    for work in registry.ip:
        owner = f" ({work.owner})" if work.owner else ""
        print(f"ip     {work.id:<24} {work.title}{owner}: {len(work.characters)} characters, "
              f"{len(work.images)} images, {len(work.scripts)} scripts")
    if not registry.talent and not registry.ip:
        print("the registry is empty; add entries with `greenroom registry add-talent` or `add-ip`")
    return 0


def _add_talent(args: argparse.Namespace) -> int:
    talent = _validated(Talent, id=args.id, name=args.name, aliases=args.alias, union=args.union)
    path = add_talent(args.config, talent, args.photo, args.voice)
    print(f"registered talent {talent.id} in {path}; run `greenroom registry build` or restart the gateway")
    return 0


def _add_ip(args: argparse.Namespace) -> int:
    work = _validated(
        IntellectualProperty, id=args.id, title=args.title, owner=args.owner, characters=args.character,
        terms=args.term,
    )
    path = add_ip(args.config, work, args.image, args.script)
    print(f"registered IP {work.id} in {path}; run `greenroom registry build` or restart the gateway")
    return 0


def _remove(args: argparse.Namespace) -> int:
    kind = remove_entry(args.config, args.id)
    print(f"removed {kind} {args.id}")
    return 0


def _validated[M: (Talent, IntellectualProperty)](model: type[M], **values: object) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError([f"--{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from exc
