"""JupyterLab settings of `make lab`, which puts this folder on JUPYTER_CONFIG_PATH (the person's own Jupyter
configuration still applies): the server listens on loopback only, opens on `nbs/`, and writes a saved
notebook the way the repository keeps it, so that `git status` shows only real edits and `make check` passes
without a cleaning step."""
import os, warnings

c = get_config()  # noqa: F821 (Jupyter defines it while it reads this file)
HERE = os.path.dirname(os.path.abspath(__file__))

c.ServerApp.ip = "127.0.0.1"
c.ServerApp.root_dir = os.path.join(HERE, "..", "..", "nbs")

def clean_on_save(model:dict, # the contents model about to be written
                  path:str, # its path relative to the server's root directory
                  contents_manager, # the server's contents manager
                  **kwargs):
    "Clear outputs as `make clean-nbs` does, then run nbdev's own save hook (`jupyter_hooks = true`)"
    if model["type"] != "notebook": return
    import nbformat
    from nbconvert.preprocessors import ClearOutputPreprocessor
    from nbdev.clean import clean_jupyter
    model["content"], _ = ClearOutputPreprocessor().preprocess(nbformat.from_dict(model["content"]), {})
    # nbdev finds its settings from the path, so give it the real one, wherever the server was started.
    try: clean_jupyter(path=os.path.join(contents_manager.root_dir, path), model=model)
    except FileNotFoundError: pass  # a brand-new notebook: cleaned, but nbdev's trust step finds no file to sign yet

c.ContentsManager.pre_save_hook = clean_on_save
# The server applies this file again for each of its extensions, and jupyter_server warns every time.
warnings.filterwarnings("ignore", message=r"Overriding existing pre_save_hook \(clean_on_save\)")
