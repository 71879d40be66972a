"""PATCH semantics: JSON merge patch, strategic merge patch, JSON patch, apply.

Strategic merge follows the patch strategies of the built-in types for the lists that have
a merge key (containers by name, conditions by type, ...); other lists are replaced, as
they are in the real API. ``$patch``/``$setElementOrder``/``$retainKeys`` directives are
honoured or dropped.
"""

from __future__ import annotations

import copy
from typing import Any

# field name -> merge key, for lists whose patchStrategy is "merge" in the built-in types.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "volumeDevices": "devicePath",
    "topologySpreadConstraints": "topologyKey",
    "addresses": "type",
}
MERGED_PRIMITIVE_LISTS = frozenset({"finalizers"})


class PatchError(ValueError):
    pass


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any, field: str = "") -> Any:
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: v for k, v in patch.items() if k != "$patch"}
        if patch.get("$patch") == "delete":
            return None
        result = copy.deepcopy(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if key.startswith(("$setElementOrder/", "$deleteFromPrimitiveList/")) or key in (
                "$retainKeys",
                "$patch",
            ):
                continue
            if value is None:
                result.pop(key, None)
            else:
                merged = strategic_merge(result.get(key), value, key)
                if merged is None:
                    result.pop(key, None)
                else:
                    result[key] = merged
        return result
    if isinstance(patch, list):
        merge_key = MERGE_KEYS.get(field)
        if merge_key and isinstance(target, list) and all(isinstance(i, dict) for i in patch):
            return _merge_list(target, patch, merge_key)
        if field in MERGED_PRIMITIVE_LISTS and isinstance(target, list):
            return list(dict.fromkeys([*target, *patch]))
        return [strategic_merge(None, item) if isinstance(item, dict) else item for item in patch]
    return copy.deepcopy(patch)


def _merge_list(target: list[Any], patch: list[dict[str, Any]], key: str) -> list[Any]:
    result = [copy.deepcopy(i) for i in target]
    if any(item.get("$patch") == "replace" for item in patch):
        return [
            {k: v for k, v in i.items() if k != "$patch"}
            for i in patch
            if i.get("$patch") != "replace"
        ]
    for item in patch:
        if key not in item:
            result.append(copy.deepcopy(item))
            continue
        index = next(
            (n for n, t in enumerate(result) if isinstance(t, dict) and t.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(strategic_merge(None, item))
        else:
            result[index] = strategic_merge(result[index], item)
    return result


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902."""
    document = copy.deepcopy(target)
    for operation in operations:
        op = operation.get("op")
        path = _pointer(str(operation.get("path", "")))
        if op == "add":
            document = _put(document, path, copy.deepcopy(operation["value"]), insert=True)
        elif op == "replace":
            _get(document, path)
            document = _put(document, path, copy.deepcopy(operation["value"]), insert=False)
        elif op == "remove":
            parent, last = _get(document, path[:-1]), path[-1]
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                if last not in parent:
                    raise PatchError(f"remove: no {last!r}")
                del parent[last]
        elif op == "test":
            if _get(document, path) != operation.get("value"):
                raise PatchError(f"test failed at {operation.get('path')}")
        elif op in ("move", "copy"):
            source = _pointer(str(operation.get("from", "")))
            value = copy.deepcopy(_get(document, source))
            if op == "move":
                document = json_patch(document, [{"op": "remove", "path": operation["from"]}])
            document = _put(document, path, value, insert=True)
        else:
            raise PatchError(f"unknown JSON patch op {op!r}")
    return document


def _pointer(text: str) -> list[str]:
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(f"bad JSON pointer {text!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]


def _get(document: Any, path: list[str]) -> Any:
    node = document
    for part in path:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError):
            raise PatchError(f"no such path /{'/'.join(path)}") from None
    return node


def _put(document: Any, path: list[str], value: Any, insert: bool) -> Any:
    if not path:
        return value
    parent = _get(document, path[:-1])
    last = path[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if insert:
            parent.insert(index, value)
        else:
            parent[index] = value
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise PatchError(f"cannot set /{'/'.join(path)}")
    return document
