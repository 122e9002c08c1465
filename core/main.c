/* fluxroute: the command-line interface (a thin layer over the engine). */
#include <stdio.h>

#include <fluxroute/version.h>

int main(void)
{
    printf("fluxroute %s\n", FR_VERSION_STRING);
    return 0;
}
