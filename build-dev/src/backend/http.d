build-dev/src/backend/http.o: src/backend/http.c src/backend/http.h
src/backend/http.h:
