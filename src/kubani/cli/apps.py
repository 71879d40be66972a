"""``cluster-mgr app``: scaffold apps in the GitOps tree."""

from typing import Annotated

import typer

from kubani.cli.options import TreeOption

app = typer.Typer(help="Add apps to the GitOps tree.")


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="App name (a DNS label); also its folder.")],
    image: Annotated[str, typer.Option("--image", help="Container image, e.g. nginx:1.27.")],
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port the container listens on.", show_default=False),
    ] = None,
    replicas: Annotated[int, typer.Option("--replicas", help="Number of pods.")] = 1,
    gpu: Annotated[
        bool, typer.Option("--gpu", help="Run on a GPU node with one GPU share.")
    ] = False,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", help="Namespace (default: the app's name).", show_default=False
        ),
    ] = None,
    ingress: Annotated[
        str | None,
        typer.Option("--ingress", help="Host name to expose the app on.", show_default=False),
    ] = None,
    path: TreeOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create apps/base/NAME from templates/app and list it in the apps overlay."""
    from kubani.cli.output import emit_json, note, success
    from kubani.gitops.paths import find_tree
    from kubani.gitops.scaffold import AppSpec, create_app

    spec = AppSpec(name, image, port, replicas, gpu, namespace, ingress)
    tree = find_tree(path)
    folder = create_app(tree, spec)
    files = sorted(p.name for p in folder.iterdir())
    if json_output:
        emit_json({"app": name, "folder": str(folder), "files": files})
        return
    success(f"created {folder} ({', '.join(files)})")
    note("next: cluster-mgr gitops validate, then commit and push; Flux applies it within a minute")
