"""The edges: the aiohttp application, the Socket.IO and HTTP routes, pages, the command line."""
