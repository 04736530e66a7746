"""The store's tests, one module per concern of core/store/."""
