"""The sync API's routes, one module (and ``APIRouter``) per resource."""
