from .imagenet import ImageNetFolder

__all__ = ['ImageNetFolder']
