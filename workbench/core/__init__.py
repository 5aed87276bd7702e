"""Qt-free core: everything here runs and is tested headless."""
